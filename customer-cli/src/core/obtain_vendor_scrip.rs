//! 6.2 Obtain VendorScrip from a merchant, the customer's side (protocol.md section 6.2;
//! paper 6.2, fig. 8).
//!
//! 1. C → B `VendorScripNotice`: `Sealed(to B){ IdProof(ID_C), Signed(X0 = UID_M) }`;
//!    B answers `VendorScripNoticeResponse { re, deadline }`. From the notice on, B0 is
//!    committed to this exchange: it is not presented anywhere else.
//! 2. On that answer the wallet saves step 2 in the same event (`ExchangeNoticed`, section
//!    7) and sends C → M `VendorScripRequest`: `Sealed(to B){ IdProof(ID_C),
//!    Signed(X1 = B0, CS_B0, W) }` (with `Secret(CS_B0)`), `Sealed(to M){ Signed(X2 = W) }`.
//! 5. B → C `ChangeBrokerScrip` (a delivery; appendix A: `X4 = outcome, change,
//!    undertaking`). OK: B0 is spent, the change `B1 = B0 − W` is stored (none when zero),
//!    and M's undertaking (its signed `X3 = W, UID_C` under its `ExchangeAuthorizationRequest`
//!    header) is verified with M's key and kept as the event's evidence: the customer's
//!    proof against a merchant who is paid and does not deliver. NOK: B0 is live again,
//!    the exchange is over.
//! 7. M → C `VendorScripResponse`: `Sealed(to C){ Signed(X6 = re, V0, CS_V0) }`: V0 of `W`
//!    by M, stored.
//!
//! The wallet never ends an exchange on its own timer: the broker enforces the deadline
//! and tells C its NOK (`ExchangeExpired`) in `ChangeBrokerScrip`, which the wallet takes
//! even while the notice is unanswered (its reply lost): the exchange then ends before
//! step 2 and B0 is free again.
//!
//! Steps 5 and 7 may arrive in either order; each is applied as it arrives and the
//! exchange ends when both are in (or on a NOK). A message already recorded changes
//! nothing. A lost one is fetched again with `TransactionStatus` (section 7).

use shared::wire::Label;
use shared::wire::bodies::{
    ChangeBrokerScripX4, ExchangeAuthorizationRequestX3, VendorScripNoticeResponseX0,
    VendorScripNoticeX0, VendorScripRequestX1, VendorScripRequestX2, VendorScripResponseX6,
};
use shared::{Amount, ScripId, TxId, Uid};

use super::change::{Payment, settlement};
use super::events::{Outcome, WalletEvent};
use super::flow::{Message, TransitionError};
use super::reply::{Decided, Incoming};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::WalletState;
use super::{account_linked, already_pending, held_broker_scrip, request_header, scrip_free};
use crate::error::WalletError;

/// Step 1: the notice of an exchange of `value` of the BrokerScrip held for VendorScrip
/// of `merchant`. Refused locally when no BrokerScrip of at least `value` is held, when a
/// VendorScrip of `merchant` is live (section 4: top it up instead, 6.5), when another
/// exchange is pending, or without `merchant`'s key (step 2 is sealed to it; 6.0b).
pub fn request(
    state: &WalletState,
    tx: TxId,
    merchant: Uid,
    value: Amount,
) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::VendorScripNotice, tx)?;
    if value.is_zero() {
        return Err(WalletError::ZeroValue);
    }
    let held = held_broker_scrip(state)?;
    if held.scrip.value() < value {
        return Err(WalletError::InsufficientScrip {
            held: held.scrip.value(),
            needed: value,
        });
    }
    if merchant == identity.broker || state.key_of(merchant).is_none() {
        return Err(WalletError::UnknownPeer { uid: merchant });
    }
    if let Some(v) = state.scrip.get(&merchant) {
        return Err(WalletError::VendorScripLive {
            merchant,
            value: v.scrip.value(),
        });
    }
    already_pending(state, Label::VendorScripNotice)?;
    already_pending(state, Label::VendorScripRequest)?;
    scrip_free(state, held.scrip.id())?;
    account_linked(state)?;
    let x0 = VendorScripNoticeX0 { merchant };
    SavedRequest::new(
        header,
        identity.broker,
        vec![SavedPart::to_broker(identity.broker, &x0, None)],
        Expect::VendorScripNotice {
            merchant,
            value,
            spent: held.scrip.id(),
        },
    )
}

/// Step 1's reply: checked; step 2, the exchange of `value` of B0 (`spent`) for VendorScrip
/// of `merchant`, built and saved in the same event.
pub fn accept_notice(
    reply: &Incoming<'_>,
    merchant: Uid,
    value: Amount,
    spent: ScripId,
) -> Decided {
    let verified = reply.any::<VendorScripNoticeResponseX0>()?;
    let deadline = verified.body.deadline;
    let tx = reply.tx();
    let (identity, header) = request_header(reply.state, Label::VendorScripRequest, tx)?;
    let held = reply
        .state
        .broker_scrip()
        .filter(|s| s.scrip.id() == spent)
        .ok_or_else(|| WalletError::Internal(format!("B0 {spent} of tx {tx} is not held")))?;
    let x1 = VendorScripRequestX1 {
        scrip: held.scrip.clone(),
        cs_hash: held.cs_hash.clone(),
        value,
    };
    let x2 = VendorScripRequestX2 { value };
    let request = SavedRequest::new(
        header,
        merchant,
        vec![
            SavedPart::to_broker(identity.broker, &x1, Some(held)),
            SavedPart::sealed(merchant, [SavedInner::signed(&x2)]),
        ],
        Expect::VendorScripRequest {
            merchant,
            value,
            spent,
            spent_value: held.scrip.value(),
            deadline,
        },
    )?;
    Ok(reply.record(
        WalletEvent::ExchangeNoticed { deadline, request },
        &verified.evidence,
    ))
}

/// Step 5: the broker's `ChangeBrokerScrip` for the exchange of `value` out of B0
/// (`spent`, worth `spent_value`), checked (see the module doc).
pub fn accept_change(
    reply: &Incoming<'_>,
    merchant: Uid,
    value: Amount,
    spent: ScripId,
    spent_value: Amount,
) -> Decided {
    let undertaking = ExchangeAuthorizationRequestX3 {
        value,
        customer: reply.keys.uid(),
    };
    let payment = Payment {
        merchant,
        spent_value,
        value,
        undertaking,
    };
    let settled = settlement(reply, &payment)?;
    let event = WalletEvent::ExchangeSettled {
        spent,
        outcome: settled.outcome,
        change: settled.change,
    };
    Ok(reply.record_all(event, settled.evidence))
}

/// Step 5 before step 2: the broker's NOK `ChangeBrokerScrip` while the notice is still
/// unanswered (its reply was lost and the exchange expired, or it was refused). The
/// exchange is over and B0, never presented, is free again. An OK cannot come before step
/// 2 (the broker decides on M's request, which carries C's step 2): it is refused.
pub fn accept_change_at_notice(reply: &Incoming<'_>) -> Decided {
    let (verified, _) = reply.broker_delivery::<ChangeBrokerScripX4>()?;
    let body = &verified.body;
    if body.outcome.is_ok() || body.change.is_some() || body.undertaking.is_some() {
        return Err(WalletError::InconsistentDecision(
            "a decision other than a bare NOK before step 2",
        ));
    }
    let outcome = Outcome::from(&body.outcome);
    Ok(reply.record(
        WalletEvent::ExchangeEndedAtNotice { outcome },
        &verified.evidence,
    ))
}

/// Step 7: M's `VendorScripResponse`, checked; V0 of `value` stored.
pub fn accept_vendor_scrip(reply: &Incoming<'_>, merchant: Uid, value: Amount) -> Decided {
    let (verified, opened) = reply.sealed::<VendorScripResponseX6>()?;
    let issued = (verified.body.scrip, verified.body.cs_hash);
    let scrip = reply.new_scrip(&opened, issued, merchant, value)?;
    if let Err(TransitionError::Repeat { .. }) = reply.pending.progress.on(Message::VendorScrip) {
        return Err(WalletError::AlreadyReceived {
            tx: reply.tx(),
            label: Label::VendorScripResponse,
        });
    }
    if let Some(live) = reply.state.scrip.get(&merchant) {
        // Unreachable through this wallet's own requests (6.2 is refused while a
        // VendorScrip of M is live); never overwrite one scrip with another.
        return Err(WalletError::VendorScripLive {
            merchant,
            value: live.scrip.value(),
        });
    }
    Ok(reply.record(
        WalletEvent::VendorScripObtained { scrip },
        &verified.evidence,
    ))
}
