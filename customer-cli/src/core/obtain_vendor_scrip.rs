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

use shared::events::{Evidence, NewEvent};
use shared::wire::bodies::{
    ChangeBrokerScripX4, ExchangeAuthorizationRequestX3, VendorScripNoticeResponseX0,
    VendorScripNoticeX0, VendorScripRequestX1, VendorScripRequestX2, VendorScripResponseX6,
};
use shared::wire::{Body, Decision, Frame, Header, Label, ScripWithSecret, Undertaking};
use shared::{Amount, KeyPair, TxId, Uid};

use super::change::{ChangeDecision, check_change};
use super::events::{Outcome, WalletEvent};
use super::flow::{Message, TransitionError};
use super::mismatched_expect;
use super::reply::{
    any_reply, broker_delivery, check_new_scrip, event_time, evidence, new_secret, own_scrip,
    sealed_reply,
};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::{Pending, WalletState};
use super::{already_pending, request_header, scrip_free};
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
    let held = state.broker_scrip().ok_or(WalletError::NoScrip {
        producer: identity.broker,
    })?;
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
    if state.account.is_none() {
        return Err(WalletError::NoAccount);
    }
    let x0 = VendorScripNoticeX0 { merchant };
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
            ],
        }],
        Expect::VendorScripNotice {
            merchant,
            value,
            spent: held.scrip.id(),
        },
    )
}

/// Step 1's reply: checked; step 2 built and saved in the same event.
pub fn accept_notice(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::VendorScripNotice {
        merchant,
        value,
        spent,
    } = pending.request.expect
    else {
        return Err(mismatched_expect(pending));
    };
    let verified = any_reply::<VendorScripNoticeResponseX0>(state, pending, frame, keys)?;
    let deadline = verified.body.deadline;
    let tx = pending.request.tx();
    let (identity, header) = request_header(state, Label::VendorScripRequest, tx)?;
    let held = state
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
            SavedPart::Sealed {
                to: identity.broker,
                inners: vec![
                    SavedInner::IdProof,
                    SavedInner::Signed {
                        body: x1.to_bytes(),
                    },
                    SavedInner::Secret { scrip_id: spent },
                ],
            },
            SavedPart::Sealed {
                to: merchant,
                inners: vec![SavedInner::Signed {
                    body: x2.to_bytes(),
                }],
            },
        ],
        Expect::VendorScripRequest {
            merchant,
            value,
            spent,
            spent_value: held.scrip.value(),
            deadline,
        },
    )?;
    Ok(NewEvent::new(
        event_time(now),
        tx,
        WalletEvent::ExchangeNoticed { deadline, request },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}

/// The parts of a `ChangeBrokerScrip` body: the decision, the change, the undertaking.
fn parts_of(x4: ChangeBrokerScripX4) -> (Decision, Option<ScripWithSecret>, Option<Undertaking>) {
    (x4.outcome, x4.change, x4.undertaking)
}

/// Step 5: the broker's `ChangeBrokerScrip`, checked (see the module doc).
pub fn accept_change(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::VendorScripRequest {
        merchant,
        value,
        spent,
        spent_value,
        ..
    } = pending.request.expect
    else {
        return Err(mismatched_expect(pending));
    };
    let (verified, opened) = broker_delivery::<ChangeBrokerScripX4>(state, frame, keys)?;
    let broker_evidence = evidence(&verified.evidence);
    let (decision, change, undertaking) = parts_of(verified.body);
    let tx = pending.request.tx();
    let mut evidences = vec![broker_evidence];
    let (change, merchant_evidence) = check_change(
        state,
        keys,
        &opened,
        tx,
        ChangeDecision {
            outcome: &decision,
            change,
            undertaking: undertaking.as_ref(),
            spent_value,
            value,
            missing_undertaking: "an OK without the merchant's undertaking",
        },
        |u| check_undertaking(state, tx, merchant, value, u),
    )?;
    evidences.extend(merchant_evidence);
    Ok(NewEvent::new(
        event_time(now),
        tx,
        WalletEvent::ExchangeSettled {
            spent,
            outcome: Outcome::from(&decision),
            change,
        },
    )
    .with_evidence(evidences))
}

/// M's undertaking: its `X3 = W, UID_C`, signed under the header of its
/// `ExchangeAuthorizationRequest` in this tx, verified with M's cached key (6.0b); returned
/// as evidence (section 8) so anyone holding M's key can verify it again.
fn check_undertaking(
    state: &WalletState,
    tx: TxId,
    merchant: Uid,
    value: Amount,
    undertaking: &Undertaking,
) -> Result<Evidence, WalletError> {
    let identity = state.identity.as_ref().ok_or(WalletError::NotAWallet)?;
    let key = state
        .key_of(merchant)
        .ok_or(WalletError::UnknownPeer { uid: merchant })?;
    let header = Header::new(
        identity.suite,
        Label::ExchangeAuthorizationRequest,
        tx,
        merchant,
    );
    let x3 = undertaking
        .verify::<ExchangeAuthorizationRequestX3>(&header, &key)
        .map_err(|_| WalletError::BadUndertaking)?;
    if x3.value != value || x3.customer != identity.me {
        return Err(WalletError::BadUndertaking);
    }
    Ok(Evidence {
        header: header.to_bytes().as_bytes().to_vec(),
        body: undertaking.body.clone(),
        sig: undertaking.sig.clone(),
        signer: merchant,
    })
}

/// Step 5 before step 2: the broker's NOK `ChangeBrokerScrip` while the notice is still
/// unanswered (its reply was lost and the exchange expired, or it was refused). The
/// exchange is over and B0, never presented, is free again. An OK cannot come before step
/// 2 (the broker decides on M's request, which carries C's step 2): it is refused.
pub fn accept_change_at_notice(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::VendorScripNotice { .. } = pending.request.expect else {
        return Err(mismatched_expect(pending));
    };
    let (verified, _) = broker_delivery::<ChangeBrokerScripX4>(state, frame, keys)?;
    let body = verified.body;
    if body.outcome.is_ok() || body.change.is_some() || body.undertaking.is_some() {
        return Err(WalletError::InconsistentDecision(
            "a decision other than a bare NOK before step 2",
        ));
    }
    Ok(NewEvent::new(
        event_time(now),
        pending.request.tx(),
        WalletEvent::ExchangeEndedAtNotice {
            outcome: Outcome::from(&body.outcome),
        },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}

/// Step 7: M's `VendorScripResponse`, checked; V0 stored.
pub fn accept_vendor_scrip(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::VendorScripRequest {
        merchant, value, ..
    } = pending.request.expect
    else {
        return Err(mismatched_expect(pending));
    };
    let (verified, opened) = sealed_reply::<VendorScripResponseX6>(state, pending, frame, keys)?;
    let body = verified.body;
    check_new_scrip(&body.scrip, merchant, value)?;
    let tx = pending.request.tx();
    if let Err(TransitionError::Repeat { .. }) = pending.progress.on(Message::VendorScrip) {
        return Err(WalletError::AlreadyReceived {
            tx,
            label: Label::VendorScripResponse,
        });
    }
    if state.scrip.contains_key(&merchant) {
        // Unreachable through this wallet's own requests (6.2 is refused while a
        // VendorScrip of M is live); never overwrite one scrip with another.
        return Err(WalletError::VendorScripLive {
            merchant,
            value: state
                .scrip
                .get(&merchant)
                .map_or(Amount::ZERO, |s| s.scrip.value()),
        });
    }
    let cs = new_secret(&opened, body.scrip.id(), &body.cs_hash)?;
    let scrip = own_scrip(keys, body.scrip, &cs, body.cs_hash, tx)?;
    Ok(NewEvent::new(
        event_time(now),
        tx,
        WalletEvent::VendorScripObtained { scrip },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}
