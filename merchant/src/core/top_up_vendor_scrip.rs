//! 6.5 Top up VendorScrip (paper 6.5, fig. 11), the merchant's side: steps 3 and 5.
//!
//! The broker delivers `VendorTopUpAuthorization`: its own sealed `X2 = W_V1, W_V, UID_C,
//! deadline` (its signature is checked first) and C's merchant part forwarded (`X1 = W_V1,
//! V0, CS_V0`, verified against C's origin header). The merchant checks V0 (section 4),
//! that `W_V1` agrees in `X1` and `X2` and equals `V0.value + W_V`, that `W_V` is above
//! zero, that the deadline has not passed and that its books can take `W_V`. Then, in one
//! commit, it holds V0 for this tx (`VendorEscrowOpened`, the broker's deadline) and stores
//! its request `VendorTopUpAccepted` (`X3 = accept, UID_C, W_V, W_V1, V0.scrip_id`, its
//! undertaking to issue V1), sealed to the broker.
//!
//! Decline: when one of those checks fails on an authorization the broker did sign, the
//! merchant declines (`X3 = decline(reason), UID_C, W_V`, with the failed check's code in
//! the reason text) and holds nothing (`VendorTopUpDeclined`), so the broker releases its
//! escrow at once (6.5 step 3: `NOK(Declined)`) instead of at the deadline. A
//! broken frame, an unknown peer or a reused tx is refused with an `Error` instead and
//! records nothing.
//!
//! Step 3 is a request: the merchant repeats it (`pending_broker_requests`) until the
//! broker's `VendorTopUpDecision` arrives, and never releases V0 on its own timer. A
//! repeat of step 2 by the broker (same digest) gets the stored step 3 again, byte for
//! byte (the frame is stored as the answer to step 2's key). On OK the merchant spends V0
//! and issues V1 of `W_V1` (`VendorScripToppedUp`) and delivers `VendorTopUpResponse`
//! (`X4 = V1, CS_V1`) to C; on NOK it releases V0 (`VendorEscrowReleased`). The decision's
//! `re` digest is compared exactly: step 3 carries only the merchant's own body.

use shared::UnixSecs;
use shared::events::{Evidence, NewEvent};
use shared::machine::Machine;
use shared::node::{Answered, Draft, Refusal, ReplyKey, TxKind};
use shared::wire::bodies::{
    Body, VendorTopUpAcceptedX3, VendorTopUpDecisionBody, VendorTopUpResponseX4,
};
use shared::wire::{
    Decision as Verdict, DigestItem, Header, Label, Reason, WireError, request_digest,
};
use shared::{Amount, ErrorCode, ExpiryRule};

use super::broker_reply::AckError;
use super::broker_reply::BrokerReply;
use super::events::{Escrow, Kind};
use super::machine::{TopUpState, TopUpStep};
use super::open::TopUpAuthorization;
use super::state::{Awaiting, State};
use super::{Config, Decision, check_presented};

/// The request digest of the merchant's step 3 (section 7): over its header and `X3`.
pub fn accepted_digest(header: &Header, x3: &VendorTopUpAcceptedX3) -> Result<Vec<u8>, WireError> {
    let body = x3.to_bytes();
    request_digest(
        header,
        &[DigestItem {
            origin: None,
            body: &body,
        }],
    )
}

/// Decides the broker's `VendorTopUpAuthorization` (step 3): accept and hold, or decline.
pub fn decide(
    state: &State,
    config: &Config,
    auth: &TopUpAuthorization,
    now: UnixSecs,
) -> Result<Decision, Refusal> {
    let tx = auth.header.tx;
    let customer = auth.x2.customer;
    let me = config.me();
    state
        .tables
        .bindings
        .check(&tx, TxKind::TopUpVendorScrip, &[customer, me])?;
    let top_up = auth.x2.top_up;
    let header3 = Header::new(config.mint.suite(), Label::VendorTopUpAccepted, tx, me);
    let evidence: Vec<Evidence> = auth.evidence.iter().map(Evidence::from).collect();
    let checked = check(state, config, auth, now);
    let step = match &checked {
        Ok(v0) => TopUpStep::Accepted { held: *v0 },
        Err(_) => TopUpStep::Declined,
    };
    // The broker's repeat of step 2 got the stored step 3 before this (section 7).
    TopUpState::transition(state.top_up_state(&tx).as_ref(), &step)
        .map_err(|_| Refusal::new(ErrorCode::TxReused, "this tx already has a top-up"))?;
    let (x3, kind) = match checked {
        Ok(v0) => {
            let x3 = VendorTopUpAcceptedX3::Accept {
                customer,
                top_up,
                new_value: auth.x2.new_value,
                scrip_id: v0,
            };
            let digest = accepted_digest(&header3, &x3).map_err(Refusal::from)?;
            let kind = Kind::VendorEscrowOpened {
                customer,
                scrip_id: v0,
                until: auth.x2.deadline,
                escrow: Escrow::TopUp {
                    top_up,
                    new_value: auth.x2.new_value,
                    digest,
                },
            };
            (x3, kind)
        }
        Err(reason) => {
            let x3 = VendorTopUpAcceptedX3::Decline {
                reason: format!("{}: {}", code_name(&reason), reason.message),
                customer,
                top_up,
            };
            let digest = accepted_digest(&header3, &x3).map_err(Refusal::from)?;
            let kind = Kind::VendorTopUpDeclined {
                customer,
                merchant: me,
                top_up,
                reason,
                digest,
            };
            (x3, kind)
        }
    };
    let event = NewEvent::new(now.to_millis(), tx, kind).with_evidence(evidence);
    let mut step3 =
        Draft::delivery(config.mint.suite(), tx, me, config.broker, &x3).sealed_with(Vec::new());
    // Stored as the answer to the broker's step 2, so its repeat gets these bytes again.
    step3.answers = Some(Answered {
        key: ReplyKey::of(&auth.header),
        digest: auth.digest.clone(),
    });
    Ok(Decision {
        events: vec![event],
        reply: None,
        deliveries: vec![step3],
    })
}

fn code_name(reason: &Reason) -> &'static str {
    reason.error_code().map_or("Refused", ErrorCode::name)
}

/// Every check of step 3; a failure is the decline's reason. Gives V0's id.
fn check(
    state: &State,
    config: &Config,
    auth: &TopUpAuthorization,
    now: UnixSecs,
) -> Result<shared::ScripId, Reason> {
    if super::passed(now, auth.x2.deadline) {
        return Err(Reason::new(
            ErrorCode::DeadlinePassed,
            "the broker's escrow deadline has passed",
        ));
    }
    let record = check_presented(
        state,
        config,
        &auth.x1.vendor_scrip,
        &auth.cs,
        auth.x2.customer,
        now,
        ExpiryRule::Strict,
    )
    .map_err(|r| Reason::new(r.code, r.message))?;
    if auth.x2.top_up.is_zero() {
        return Err(Reason::new(
            ErrorCode::AmountOutOfRange,
            "a top-up must add a value",
        ));
    }
    let expected: Option<Amount> = record.body.value.checked_add(auth.x2.top_up).ok();
    if auth.x1.new_value != auth.x2.new_value || expected != Some(auth.x2.new_value) {
        return Err(Reason::new(
            ErrorCode::AmountMismatch,
            "W_V1 differs between the customer and the broker, or from V0 + W_V",
        ));
    }
    if state
        .tables
        .books
        .issued
        .checked_add(auth.x2.top_up)
        .is_err()
    {
        return Err(Reason::new(
            ErrorCode::AmountOutOfRange,
            "the issued total would overflow",
        ));
    }
    Ok(record.body.scrip_id)
}

/// Step 4 → 5: acts on the broker's `VendorTopUpDecision` for the top-up this tx awaits.
pub fn decided(
    state: &State,
    config: &Config,
    reply: &BrokerReply<VendorTopUpDecisionBody>,
    now: UnixSecs,
) -> Result<Decision, AckError> {
    let tx = reply.header.tx;
    let Some(Awaiting::TopUp {
        customer,
        state: waiting,
        new_value,
        digest,
        ..
    }) = state.tables.awaiting.get(&tx)
    else {
        return Err(AckError::NotPending);
    };
    if reply.body.re.digest != *digest {
        return Err(AckError::NotPending);
    }
    // What the decision does where the top-up stands: a declined top-up is closed whatever
    // the broker says (NOK(Declined)); an accepted one tops V0 up on OK, releases it on NOK.
    let step = match (waiting, &reply.body.decision) {
        (TopUpState::Accepted { held }, Verdict::Ok) => TopUpStep::ToppedUp { spent: *held },
        (TopUpState::Accepted { held }, Verdict::Nok(_)) => TopUpStep::Released { scrip: *held },
        (TopUpState::Declined | TopUpState::Decided, _) => TopUpStep::Closed,
    };
    TopUpState::transition(Some(waiting), &step).map_err(|_| AckError::NotPending)?;
    let evidence = vec![Evidence::from(&reply.evidence)];
    let (TopUpStep::ToppedUp { spent: held } | TopUpStep::Released { scrip: held }) = step else {
        // Declined: nothing was held and nothing is issued; the tx is closed.
        let event =
            NewEvent::new(now.to_millis(), tx, Kind::VendorTopUpClosed).with_evidence(evidence);
        return Ok(Decision {
            events: vec![event],
            reply: None,
            deliveries: Vec::new(),
        });
    };
    let record = state
        .tables
        .live
        .held_by(&held, tx)
        .map_err(|_| AckError::NotPending)?;
    match &reply.body.decision {
        Verdict::Ok => {
            let (v1, cs) = config.mint.issue(*new_value, config.expiry_from(now));
            let event = NewEvent::new(
                now.to_millis(),
                tx,
                Kind::VendorScripToppedUp {
                    customer: *customer,
                    old: record.body,
                    new: v1.body,
                },
            )
            .with_evidence(evidence);
            let x4 = VendorTopUpResponseX4 {
                cs_hash: cs.cs_hash(config.mint.suite()),
                scrip: v1.clone(),
            };
            let to_customer = Draft::delivery(config.mint.suite(), tx, config.me(), *customer, &x4)
                .sealed_with(vec![(v1.id(), cs)]);
            Ok(Decision {
                events: vec![event],
                reply: None,
                deliveries: vec![to_customer],
            })
        }
        Verdict::Nok(reason) => {
            let event = NewEvent::new(
                now.to_millis(),
                tx,
                Kind::VendorEscrowReleased {
                    scrip_id: held,
                    reason: reason.clone(),
                },
            )
            .with_evidence(evidence);
            Ok(Decision {
                events: vec![event],
                reply: None,
                deliveries: Vec::new(),
            })
        }
    }
}
