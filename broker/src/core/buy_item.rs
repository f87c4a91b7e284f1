//! 6.3 Buy item (paper 6.3, fig. 9), the broker's side: two messages signed in the clear,
//! `PurchaseInitiated` from C (step 1) and `PurchaseCompleted` from M (step 5).
//!
//! The broker's whole cost in a purchase is these two signature verifications and the log
//! appends (paper section 7): `open` verifies one clear signature per message (no
//! private-key operation, nothing to decrypt) and each decision is one event. The replies are
//! unsigned `Ack`s (ADR 0008): signing them would be a private-key operation per purchase,
//! which 6.3 forbids. An `Ack` here carries no value and no decision; its `re` binds it to
//! the request, and the requester repeats until it has one.
//!
//! Step 5 matched with step 1 (same tx, C, M and `W_P`) is `PurchaseRecorded`, memo
//! `float:vendor:M −W_P`; otherwise `PurchaseUnmatched`, no posting, for the auditor. The
//! two may arrive in either order: a step 1 that finds a matching unmatched step 5 records
//! the match then. A memo that goes below zero adds `MemoAlarm` (an audit alarm, never a
//! refusal, section 5).

use shared::events::{Account, NewEvent, Posting};
use shared::ids::Uid;
use shared::node::{Draft, OpenKind, Refusal, TxKind};
use shared::wire::bodies::{AckBody, PurchaseCompletedX3, PurchaseInitiatedX0, Re};
use shared::{Amount, ErrorCode};

use super::{Ctx, Decision, Kind, State, Verified, evidence_of, memo_alarm};

/// Step 1: C announces `W_P` to M.
pub(super) fn initiated(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &PurchaseInitiatedX0,
) -> Result<Decision, Refusal> {
    let customer = v.header.sender;
    let tx = v.header.tx;
    state
        .bindings
        .check(&tx, TxKind::BuyItem, &[customer, x.merchant])?;
    registered(state, &x.merchant, "the merchant")?;
    let existing = state.purchases.get(&tx);
    if existing.is_some_and(|p| p.customer != customer || p.initiated.is_some()) {
        return Err(Refusal::new(
            ErrorCode::TxReused,
            "this tx already has a purchase",
        ));
    }
    if existing.is_none() {
        ctx.within_quota(state, OpenKind::Purchase, customer)?;
    }
    let opened = NewEvent::new(
        ctx.now.to_millis(),
        tx,
        Kind::PurchaseOpened {
            customer,
            merchant: x.merchant,
            value: x.value,
        },
    )
    .with_evidence(evidence_of(v));
    let mut events = vec![opened];
    // M's step 5 came first and agrees: record the match now.
    if let Some(p) = existing
        && !p.recorded
        && p.merchant == x.merchant
        && p.completed == Some(x.value)
    {
        events.extend(recorded(state, ctx, tx, customer, x.merchant, x.value));
    }
    Ok(ack(ctx, v, events))
}

/// Step 5: M reports the purchase of `W_P` by C.
pub(super) fn completed(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &PurchaseCompletedX3,
) -> Result<Decision, Refusal> {
    let merchant = v.header.sender;
    let tx = v.header.tx;
    state
        .bindings
        .check(&tx, TxKind::BuyItem, &[merchant, x.customer])?;
    registered(state, &x.customer, "the customer")?;
    let existing = state.purchases.get(&tx);
    if existing.is_some_and(|p| p.merchant != merchant || p.completed.is_some()) {
        return Err(Refusal::new(
            ErrorCode::TxReused,
            "this tx already has a completed purchase",
        ));
    }
    let matched = existing
        .is_some_and(|p| p.customer == x.customer && p.initiated == Some(x.value) && !p.recorded);
    let events = if matched {
        recorded(state, ctx, tx, x.customer, merchant, x.value)
    } else {
        vec![NewEvent::new(
            ctx.now.to_millis(),
            tx,
            Kind::PurchaseUnmatched {
                customer: x.customer,
                merchant,
                value: x.value,
            },
        )]
    };
    let events = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            if i == 0 {
                e.with_evidence(evidence_of(v))
            } else {
                e
            }
        })
        .collect();
    Ok(ack(ctx, v, events))
}

/// `PurchaseRecorded` with its memo posting, and `MemoAlarm` if the memo goes below zero.
fn recorded(
    state: &State,
    ctx: &Ctx<'_>,
    tx: shared::ids::TxId,
    customer: Uid,
    merchant: Uid,
    value: Amount,
) -> Vec<NewEvent<Kind>> {
    let mut events = vec![
        NewEvent::new(
            ctx.now.to_millis(),
            tx,
            Kind::PurchaseRecorded {
                customer,
                merchant,
                value,
            },
        )
        .with_memos(vec![Posting::decrease(
            Account::FloatVendor(merchant),
            value,
        )]),
    ];
    events.extend(memo_alarm(state, ctx, tx, merchant, value));
    events
}

fn registered(state: &State, uid: &Uid, who: &str) -> Result<(), Refusal> {
    if state.peers.contains_key(uid) {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::UnknownPeer,
            format!("{who} is not a registered peer"),
        ))
    }
}

fn ack(ctx: &Ctx<'_>, v: &Verified, events: Vec<NewEvent<Kind>>) -> Decision {
    let body = AckBody {
        re: Re::new(&v.header, v.digest.clone()),
        deadline: None,
    };
    Decision {
        events,
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body).unsigned(),
        deliveries: Vec::new(),
    }
}
