//! 6.5 Top up VendorScrip (paper 6.5, fig. 11), the broker's side: C's request (steps 1
//! and 2), M's acceptance or decline (steps 3, 4 and 6) and the deadline.
//!
//! The broker holds `B0` in escrow and is the decision point (section 7):
//! - Step 1 → 2 ([`request`]): the checks of C's request are refusals (`Error`, nothing
//!   recorded): a registered merchant other than C, `W_V > 0`, `W_V1 > W_V` (`W_V1 =
//!   V0.value + W_V` and a VendorScrip has a value; `AmountMismatch` otherwise), `B0` valid,
//!   live and C's (section 4; a held `B0` is `Held`), `B0 ≥ W_V` (`ExceedsScrip`), a tx with
//!   no escrow yet (`TxReused`). Then `EscrowOpened` (B0 `Held` until the deadline), the reply
//!   `Ack { re, deadline }` to C, and the delivery `VendorTopUpAuthorization` to M: `X2 =
//!   W_V1, W_V, UID_C, deadline` sealed to M plus C's merchant part forwarded unchanged.
//!   While the deadline has not passed the broker may re-send that delivery
//!   ([`to_resend`]); M answers a repeat by digest.
//! - Step 3 → 4 ([`accepted`]): M's `X3`. The decision is final and recorded either way:
//!   an accept in time whose `W_V` and `W_V1` equal C's → `VendorTopUpSettled` (B0 spent,
//!   change B1 = B0 − W_V, `float:broker −W_V, bank:M +W_V`, memo `float:vendor:M +W_V`),
//!   reply OK; a decline → `EscrowReleased` with NOK(`Declined`, M's reason) (6.5 step 3); an
//!   accept whose amounts differ from C's → `EscrowReleased` with NOK(`AmountMismatch`) (M
//!   undertook something C did not ask; as in 6.2 a failed check of the decision is a
//!   final NOK, so M releases `V0` at once instead of repeating until the deadline); an
//!   open escrow past its deadline → `EscrowReleased` with NOK(`DeadlinePassed`). Every one
//!   of these sends C `ChangeBrokerScrip` with the decision (6.5 step 6): OK with the change
//!   and M's signed `X3` (the undertaking), NOK with neither, `B0` live again.
//! - The deadline ([`expired`], the broker's timer): `EscrowReleased` with
//!   NOK(`DeadlinePassed`) and C is told. From then on every step 3 of the tx gets that
//!   stored NOK (`VendorTopUpRefused` records the answer so that a repeat gets the same
//!   bytes), so M releases `V0` too. C is not told a second time.
//! - A step 3 for a tx with no escrow is `NotAParty` (M only gets step 2 after the escrow
//!   is open, so nothing legitimate sends it); a step 3 from or about anyone but the
//!   escrow's merchant and customer is `TxReused` (the tx binding, section 7). Neither is
//!   recorded.

use shared::ErrorCode;
use shared::events::{Account, NewEvent, Posting};
use shared::ids::{TxId, Uid};
use shared::machine::Machine;
use shared::node::{Draft, OpenKind, Refusal, TxKind};
use shared::wire::bodies::{
    AckBody, ChangeBrokerScripX5, Re, VendorTopUpAcceptedX3, VendorTopUpAuthorizationX2,
    VendorTopUpDecisionBody,
};
use shared::wire::{
    Decision as Verdict, Frame, Label, Part, Reason, ScripWithSecret, SignedEvidence, Undertaking,
};
use shared::{ExpiryRule, UnixSecs};

use super::machine::{EscrowState, EscrowStep};
use super::obtain_vendor_scrip::{Timed, nok_to_customer};
use super::request::VendorTopUp;
use super::state::Escrow;
use super::{
    Ctx, Decision, Kind, State, Verified, check_presented, evidence_of, passed, sender_peer,
};

/// Steps 1 and 2: C's request; the escrow opens (see the module doc).
pub(super) fn request(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &VendorTopUp,
) -> Result<Decision, Refusal> {
    let customer = v.header.sender;
    let tx = v.header.tx;
    let x0 = &x.x0;
    let merchant = x0.merchant;
    state
        .bindings
        .check(&tx, TxKind::TopUpVendorScrip, &[customer, merchant])?;
    if merchant == customer {
        return Err(Refusal::new(
            ErrorCode::NotAParty,
            "a customer cannot top up VendorScrip with itself as merchant",
        ));
    }
    if !state.peers.contains_key(&merchant) {
        return Err(Refusal::new(
            ErrorCode::UnknownPeer,
            "the merchant is not a registered peer",
        ));
    }
    EscrowState::transition(state.escrow_state(&tx), &EscrowStep::Opened)
        .map_err(|_| Refusal::new(ErrorCode::TxReused, "this tx already has an escrow"))?;
    ctx.within_quota(state, OpenKind::Escrow, customer)?;
    if x0.top_up.is_zero() {
        return Err(Refusal::new(
            ErrorCode::AmountOutOfRange,
            "a top-up must have a value",
        ));
    }
    if x0.new_value <= x0.top_up {
        return Err(Refusal::new(
            ErrorCode::AmountMismatch,
            "W_V1 = V0.value + W_V must exceed W_V",
        ));
    }
    check_presented(
        state,
        ctx,
        &x0.broker_scrip,
        &x.cs,
        customer,
        ExpiryRule::Strict,
    )?;
    if x0.broker_scrip.value() < x0.top_up {
        return Err(Refusal::new(
            ErrorCode::ExceedsScrip,
            "the top-up exceeds the BrokerScrip",
        ));
    }
    let deadline = ctx.after(ctx.config.escrow_window_secs, "deadline out of range")?;
    let event = NewEvent::new(
        ctx.now.to_millis(),
        tx,
        Kind::EscrowOpened {
            customer,
            merchant,
            scrip: x0.broker_scrip.id(),
            top_up: x0.top_up,
            new_value: x0.new_value,
            deadline,
        },
    )
    .with_evidence(evidence_of(v));
    let ack = AckBody {
        re: Re::new(&v.header, v.digest.clone()),
        deadline: Some(deadline),
    };
    let x2 = VendorTopUpAuthorizationX2 {
        new_value: x0.new_value,
        top_up: x0.top_up,
        customer,
        deadline,
    };
    let forwarded = Part::forwarded(v.header, x.merchant_part.clone())
        .map_err(|_| Refusal::new(ErrorCode::BadFrame, "the merchant part cannot be relayed"))?;
    Ok(Decision {
        events: vec![event],
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &ack),
        deliveries: vec![
            Draft::delivery(ctx.config.suite, tx, ctx.me, merchant, &x2)
                .sealed_with(Vec::new())
                .forwarding(vec![forwarded]),
        ],
    })
}

/// Steps 3, 4 and 6: M's acceptance or decline (see the module doc).
pub(super) fn accepted(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x3: &VendorTopUpAcceptedX3,
    x3_evidence: &SignedEvidence,
) -> Result<Decision, Refusal> {
    let merchant = v.header.sender;
    let customer = x3.customer();
    let tx = v.header.tx;
    state
        .bindings
        .check(&tx, TxKind::TopUpVendorScrip, &[merchant, customer])?;
    let escrow = state
        .escrows
        .get(&tx)
        .ok_or_else(|| Refusal::new(ErrorCode::NotAParty, "this tx has no escrow of a top-up"))?;
    if escrow.merchant != merchant || escrow.customer != customer {
        return Err(Refusal::new(
            ErrorCode::NotAParty,
            "the escrow of this tx is between other parties",
        ));
    }
    if !escrow.state.allows(&EscrowStep::Settled) {
        // Released: the first step 3 after it gets the escrow's stored NOK, recorded.
        // Settled: M's own decision got its stored reply before this; another step 3 from
        // M under the same tx has another digest and was refused by the reply lookup.
        return match EscrowState::transition(Some(&escrow.state), &EscrowStep::Refused) {
            Ok(EscrowState::Released(reason)) => Ok(late(ctx, v, escrow, reason)),
            _ => Err(Refusal::new(
                ErrorCode::TxReused,
                "the top-up of this tx is settled",
            )),
        };
    }
    let refuse = |code, message: String| Err(Reason::new(code, message));
    let verdict = if passed(ctx.now, escrow.deadline) {
        refuse(
            ErrorCode::DeadlinePassed,
            "the escrow's deadline passed".to_owned(),
        )
    } else {
        match x3 {
            VendorTopUpAcceptedX3::Decline { reason, .. } => refuse(
                ErrorCode::Declined,
                format!("the merchant declined: {reason}"),
            ),
            VendorTopUpAcceptedX3::Accept {
                top_up, new_value, ..
            } if (*top_up, *new_value) != (escrow.top_up, escrow.new_value) => refuse(
                ErrorCode::AmountMismatch,
                "the merchant's amounts differ from the customer's".to_owned(),
            ),
            VendorTopUpAcceptedX3::Accept { .. } => Ok(()),
        }
    };
    match verdict {
        Ok(()) => settle(state, ctx, v, escrow, x3_evidence),
        Err(reason) => Ok(release(ctx, v, escrow, reason)),
    }
}

/// `VendorTopUpSettled`: B0 spent, change issued, M paid; OK to M, change and undertaking
/// to C.
fn settle(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    escrow: &Escrow,
    x3_evidence: &SignedEvidence,
) -> Result<Decision, Refusal> {
    let tx = v.header.tx;
    // The escrow holds B0 (only its own events end the hold, section 4).
    let b0 = state.live.held_by(&escrow.scrip, tx)?;
    let merchant_pan = &sender_peer(state, v)?.pan;
    let change_value = b0
        .body
        .value
        .checked_sub(escrow.top_up)
        .map_err(|_| Refusal::new(ErrorCode::Internal, "the escrow exceeds its scrip"))?;
    // The change is a new scrip with a fresh lifetime, like every issue.
    let expires = ctx.expiry()?;
    let change = (!change_value.is_zero()).then(|| ctx.mint.issue(change_value, expires));
    let event = NewEvent::new(
        ctx.now.to_millis(),
        tx,
        Kind::VendorTopUpSettled {
            customer: escrow.customer,
            merchant: escrow.merchant,
            top_up: escrow.top_up,
            spent: escrow.scrip,
            change: change.as_ref().map(|(s, _)| s.body),
        },
    )
    .with_postings(vec![
        Posting::decrease(Account::FloatBroker, escrow.top_up),
        Posting::increase(Account::Bank(merchant_pan.clone()), escrow.top_up),
    ])
    .with_memos(vec![Posting::increase(
        Account::FloatVendor(escrow.merchant),
        escrow.top_up,
    )])
    .with_evidence(evidence_of(v));
    let reply = VendorTopUpDecisionBody {
        re: Re::new(&v.header, v.digest.clone()),
        decision: Verdict::Ok,
    };
    let x5 = ChangeBrokerScripX5 {
        outcome: Verdict::Ok,
        change: change.as_ref().map(|(scrip, cs)| ScripWithSecret {
            scrip: scrip.clone(),
            cs_hash: cs.cs_hash(ctx.config.suite),
        }),
        undertaking: Some(Undertaking::from(x3_evidence)),
    };
    let secrets = change
        .map(|(scrip, cs)| (scrip.id(), cs))
        .into_iter()
        .collect();
    Ok(Decision {
        events: vec![event],
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &reply).sealed_with(Vec::new()),
        deliveries: vec![
            Draft::delivery(ctx.config.suite, tx, ctx.me, escrow.customer, &x5)
                .sealed_with(secrets),
        ],
    })
}

/// `EscrowReleased` in answer to M's step 3: NOK to M, and to C.
fn release(ctx: &Ctx<'_>, v: &Verified, escrow: &Escrow, reason: Reason) -> Decision {
    let tx = v.header.tx;
    let event = released_event(ctx.now, tx, escrow, reason.clone()).with_evidence(evidence_of(v));
    Decision {
        events: vec![event],
        reply: nok_reply(ctx, v, reason.clone()),
        deliveries: vec![nok_to_customer(
            ctx.config.suite,
            ctx.me,
            tx,
            escrow.customer,
            reason,
        )],
    }
}

/// A first step 3 after the escrow was released: the stored NOK, recorded as the answer.
/// C was told when the escrow was released.
fn late(ctx: &Ctx<'_>, v: &Verified, escrow: &Escrow, reason: Reason) -> Decision {
    let event = NewEvent::new(
        ctx.now.to_millis(),
        v.header.tx,
        Kind::VendorTopUpRefused {
            customer: escrow.customer,
            merchant: escrow.merchant,
            reason: reason.clone(),
        },
    )
    .with_evidence(evidence_of(v));
    Decision {
        events: vec![event],
        reply: nok_reply(ctx, v, reason),
        deliveries: Vec::new(),
    }
}

fn nok_reply(ctx: &Ctx<'_>, v: &Verified, reason: Reason) -> Draft {
    let reply = VendorTopUpDecisionBody {
        re: Re::new(&v.header, v.digest.clone()),
        decision: Verdict::Nok(reason),
    };
    Draft::reply(ctx.me, &v.header, &v.digest, &reply).sealed_with(Vec::new())
}

fn released_event(now: UnixSecs, tx: TxId, escrow: &Escrow, reason: Reason) -> NewEvent<Kind> {
    NewEvent::new(
        now.to_millis(),
        tx,
        Kind::EscrowReleased {
            customer: escrow.customer,
            merchant: escrow.merchant,
            scrip: escrow.scrip,
            reason,
        },
    )
}

/// `EscrowReleased` with NOK(`DeadlinePassed`) for every open escrow whose deadline is
/// before `now`, each with its NOK to C: what the broker's timer appends (section 7: the
/// broker enforces every deadline; `B0` is `Live` again, nothing moved).
#[must_use]
pub fn expired(state: &State, me: Uid, now: UnixSecs) -> Vec<Timed> {
    state
        .escrows
        .iter()
        .filter(|(_, e)| !e.state.is_final() && passed(now, e.deadline))
        .map(|(tx, e)| {
            let reason = Reason::new(
                ErrorCode::DeadlinePassed,
                "the merchant did not answer before the escrow's deadline",
            );
            Timed {
                event: released_event(now, *tx, e, reason.clone()),
                deliveries: vec![nok_to_customer(state.suite, me, *tx, e.customer, reason)],
            }
        })
        .collect()
}

/// The `VendorTopUpAuthorization` frames (step 2) the broker may re-send at `now`: those
/// of every open escrow whose deadline has not passed, as stored in the outbox (the same
/// bytes, so M answers a repeat by digest), with their recipient.
#[must_use]
pub fn to_resend(state: &State, now: UnixSecs) -> Vec<(Uid, Vec<u8>)> {
    state
        .escrows
        .iter()
        .filter(|(_, e)| !e.state.is_final() && !passed(now, e.deadline))
        .flat_map(|(tx, e)| {
            state
                .outbox
                .frames(tx, &e.merchant)
                .iter()
                .filter(|f| {
                    Frame::decode(f)
                        .is_ok_and(|f| f.header.label == Label::VendorTopUpAuthorization)
                })
                .map(|f| (e.merchant, f.clone()))
        })
        .collect()
}
