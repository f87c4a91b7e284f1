//! 6.2 Obtain VendorScrip from a merchant (paper 6.2, fig. 8), the broker's side: the
//! notice (step 1), the authorization (steps 4 to 6) and the deadline.
//!
//! The broker is the decision point (section 7). Its decision on M's request is final and
//! recorded either way: `ExchangeAuthorized` (B0 spent, change B1 to C, `float:broker −W,
//! bank:M +W`, memo `float:vendor:M +W`) or `ExchangeRefused` with the reason, also for a
//! missing open exchange (`NoOpenExchange`) and for C's forwarded part that does not open
//! or verify once M's own part did (`BadFrame`): an honest C sends step 2 only after the
//! notice's reply, and M, who may not undo on its own timer, must get a decision to close
//! on (6.2 step 4, section 10). At the deadline with no decision the
//! broker closes the exchange (`ExchangeExpired`, [`expired`]); a request arriving after it
//! gets a recorded NOK.
//!
//! C learns every outcome from the broker (protocol.md 6.2 step 5, appendix A): the
//! `ChangeBrokerScrip` delivery carries the decision: OK with the change and M's undertaking,
//! NOK (refused, expired) with neither. C is told once per exchange: a request refused after
//! the exchange expired sends C nothing more.

use shared::ErrorCode;
use shared::events::{Account, NewEvent, Posting};
use shared::ids::Pan;
use shared::machine::Machine;
use shared::node::{Draft, OpenKind, Refusal, TxKind};
use shared::wire::bodies::{
    ChangeBrokerScripX4, ExchangeAuthorizationResponseX5, Re, VendorScripNoticeResponseX0,
    VendorScripNoticeX0,
};
use shared::wire::{Decision as Verdict, Reason, ScripWithSecret, Undertaking};
use shared::{ExpiryRule, UnixSecs};

use super::machine::{ExchangeState, ExchangeStep};
use super::request::{CustomerPart, ExchangeAuthorization};
use super::state::Exchange;
use super::{
    Ctx, Decision, Kind, State, Verified, check_presented, evidence_of, passed, sender_peer,
};

/// Step 1: C announces an exchange with M. Refused if M is not registered, or if the tx
/// already has an exchange (a repeat of the same notice got its stored reply before this).
pub(super) fn notice(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &VendorScripNoticeX0,
) -> Result<Decision, Refusal> {
    let customer = v.header.sender;
    state.bindings.check(
        &v.header.tx,
        TxKind::ObtainVendorScrip,
        &[customer, x.merchant],
    )?;
    if !state.peers.contains_key(&x.merchant) {
        return Err(Refusal::new(
            ErrorCode::UnknownPeer,
            "the merchant is not a registered peer",
        ));
    }
    ExchangeState::transition(state.exchange_state(&v.header.tx), &ExchangeStep::Opened)
        .map_err(|_| Refusal::new(ErrorCode::TxReused, "this tx already has an exchange"))?;
    ctx.within_quota(state, OpenKind::Exchange, customer)?;
    let deadline = ctx.after(ctx.config.exchange_window_secs, "deadline out of range")?;
    let event = NewEvent::new(
        ctx.now.to_millis(),
        v.header.tx,
        Kind::ExchangeOpened {
            customer,
            merchant: x.merchant,
            deadline,
        },
    )
    .with_evidence(evidence_of(v));
    let body = VendorScripNoticeResponseX0 {
        re: Re::new(&v.header, v.digest.clone()),
        deadline,
    };
    Ok(Decision {
        events: vec![event],
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body),
        deliveries: Vec::new(),
    })
}

/// Steps 4 to 6: M's authorization request with C's forwarded part.
pub(super) fn authorize(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &ExchangeAuthorization,
) -> Result<Decision, Refusal> {
    let merchant = v.header.sender;
    let customer = x.x3.customer;
    let tx = v.header.tx;
    state
        .bindings
        .check(&tx, TxKind::ObtainVendorScrip, &[merchant, customer])?;
    let Some(exchange) = state.exchanges.get(&tx) else {
        // Recorded (6.2 step 4): an honest C sends step 2 only after the notice's reply,
        // so M must get a decision to close on, not an `Error` to repeat for ever.
        let reason = Reason::new(
            ErrorCode::NoOpenExchange,
            "no exchange was announced for this tx",
        );
        let tell_customer = state.peers.contains_key(&customer);
        return Ok(refused(ctx, v, x, reason, tell_customer));
    };
    if exchange.merchant != merchant || exchange.customer != customer {
        return Err(Refusal::new(
            ErrorCode::NotAParty,
            "the exchange of this tx is between other parties",
        ));
    }
    let merchant_pan = &sender_peer(state, v)?.pan;
    let reason = match check(state, ctx, x, exchange) {
        Ok(part) => return Ok(authorized(ctx, v, x, part, merchant_pan)),
        Err(reason) => reason,
    };
    // A decided exchange's request got its stored reply before this (section 7); one that
    // expired answers M's first request with a recorded NOK and stays expired.
    let after = ExchangeState::transition(Some(&exchange.state), &ExchangeStep::Refused)
        .map_err(|_| Refusal::new(ErrorCode::TxReused, "the exchange of this tx is decided"))?;
    // C hears the outcome once: an exchange that expired already told C so.
    Ok(refused(ctx, v, x, reason, after == ExchangeState::Refused))
}

/// Every check of step 4 whose failure is a final, recorded NOK: first that the exchange
/// may still be authorized (open, its deadline not passed).
fn check<'a>(
    state: &State,
    ctx: &Ctx<'_>,
    x: &'a ExchangeAuthorization,
    exchange: &Exchange,
) -> Result<&'a CustomerPart, Reason> {
    if !exchange.state.allows(&ExchangeStep::Authorized) || passed(ctx.now, exchange.deadline) {
        return Err(Reason::new(
            ErrorCode::DeadlinePassed,
            "the exchange closed at its deadline",
        ));
    }
    let part = x.customer_part.as_ref().map_err(Clone::clone)?;
    let CustomerPart { x1, cs } = part;
    if x1.value != x.x3.value {
        return Err(Reason::new(
            ErrorCode::AmountMismatch,
            "the customer's and the merchant's amounts differ",
        ));
    }
    if x.x3.value.is_zero() {
        return Err(Reason::new(
            ErrorCode::AmountOutOfRange,
            "an exchange must have a value",
        ));
    }
    check_presented(state, ctx, &x1.scrip, cs, x.x3.customer, ExpiryRule::Strict)
        .map_err(|r| Reason::new(r.code, r.message))?;
    if x1.scrip.value() < x.x3.value {
        return Err(Reason::new(
            ErrorCode::ExceedsScrip,
            "the amount exceeds the BrokerScrip",
        ));
    }
    Ok(part)
}

fn authorized(
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &ExchangeAuthorization,
    part: &CustomerPart,
    merchant_pan: &Pan,
) -> Decision {
    let (merchant, customer, value) = (v.header.sender, x.x3.customer, x.x3.value);
    let b0 = &part.x1.scrip;
    // `check` established b0 ≥ value, so the difference cannot fail; zero means no change.
    let change_value = b0.value().checked_sub(value).unwrap_or_default();
    // The change is a new scrip with a fresh lifetime, like every issue.
    let expires = ctx
        .now
        .saturating_add_secs(ctx.config.scrip_lifetime_secs)
        .get();
    let change = (!change_value.is_zero()).then(|| ctx.mint.issue(change_value, expires));
    let event = NewEvent::new(
        ctx.now.to_millis(),
        v.header.tx,
        Kind::ExchangeAuthorized {
            customer,
            merchant,
            value,
            spent: b0.id(),
            change: change.as_ref().map(|(s, _)| s.body),
        },
    )
    .with_postings(vec![
        Posting::decrease(Account::FloatBroker, value),
        Posting::increase(Account::Bank(merchant_pan.clone()), value),
    ])
    .with_memos(vec![Posting::increase(
        Account::FloatVendor(merchant),
        value,
    )])
    .with_evidence(evidence_of(v));
    let reply = ExchangeAuthorizationResponseX5 {
        re: Re::new(&v.header, v.digest.clone()),
        decision: Verdict::Ok,
        customer,
        value,
    };
    let x4 = ChangeBrokerScripX4 {
        outcome: Verdict::Ok,
        change: change.as_ref().map(|(scrip, cs)| ScripWithSecret {
            scrip: scrip.clone(),
            cs_hash: cs.cs_hash(ctx.config.suite),
        }),
        undertaking: Some(Undertaking::from(&x.x3_evidence)),
    };
    let secrets = change
        .map(|(scrip, cs)| (scrip.id(), cs))
        .into_iter()
        .collect();
    Decision {
        events: vec![event],
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &reply).sealed_with(Vec::new()),
        deliveries: vec![
            Draft::delivery(ctx.config.suite, v.header.tx, ctx.me, customer, &x4)
                .sealed_with(secrets),
        ],
    }
}

/// The recorded NOK; `tell_customer`: also deliver it to C as `ChangeBrokerScrip` (protocol.md
/// 6.2 step 5: C learns every outcome from the broker), unless C was already told (the
/// exchange expired before this request came).
fn refused(
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &ExchangeAuthorization,
    reason: Reason,
    tell_customer: bool,
) -> Decision {
    let event = NewEvent::new(
        ctx.now.to_millis(),
        v.header.tx,
        Kind::ExchangeRefused {
            customer: x.x3.customer,
            merchant: v.header.sender,
            reason: reason.clone(),
        },
    )
    .with_evidence(evidence_of(v));
    let reply = ExchangeAuthorizationResponseX5 {
        re: Re::new(&v.header, v.digest.clone()),
        decision: Verdict::Nok(reason.clone()),
        customer: x.x3.customer,
        value: x.x3.value,
    };
    let deliveries = if tell_customer {
        vec![nok_to_customer(
            ctx.config.suite,
            ctx.me,
            v.header.tx,
            x.x3.customer,
            reason,
        )]
    } else {
        Vec::new()
    };
    Decision {
        events: vec![event],
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &reply).sealed_with(Vec::new()),
        deliveries,
    }
}

/// `ChangeBrokerScrip` carrying a NOK (protocol.md 6.2 step 5): no change, no undertaking; C's
/// `B0` is live at the broker (never spent in 6.2, released in 6.5).
pub(super) fn nok_to_customer(
    suite: shared::Suite,
    me: shared::ids::Uid,
    tx: shared::ids::TxId,
    customer: shared::ids::Uid,
    reason: Reason,
) -> Draft {
    let x4 = ChangeBrokerScripX4 {
        outcome: Verdict::Nok(reason),
        change: None,
        undertaking: None,
    };
    Draft::delivery(suite, tx, me, customer, &x4).sealed_with(Vec::new())
}

/// An event the broker's timer appends, with the deliveries it sends (sealed and stored
/// with that event, so `TransactionStatus` returns them).
#[derive(Debug)]
pub struct Timed {
    /// The event.
    pub event: NewEvent<Kind>,
    /// One-way messages it sends.
    pub deliveries: Vec<Draft>,
}

/// `ExchangeExpired` for every open exchange whose deadline is before `now`: what the
/// broker's timer appends (section 7: the broker enforces every deadline), each with its
/// NOK(`DeadlinePassed`) to C as `ChangeBrokerScrip` (protocol.md 6.2 step 5).
#[must_use]
pub fn expired(state: &State, me: shared::ids::Uid, now: UnixSecs) -> Vec<Timed> {
    state
        .exchanges
        .iter()
        .filter(|(_, e)| e.state.allows(&ExchangeStep::Expired) && passed(now, e.deadline))
        .map(|(tx, e)| Timed {
            event: NewEvent::new(
                now.to_millis(),
                *tx,
                Kind::ExchangeExpired {
                    customer: e.customer,
                    merchant: e.merchant,
                },
            ),
            deliveries: vec![nok_to_customer(
                state.suite,
                me,
                *tx,
                e.customer,
                Reason::new(
                    ErrorCode::DeadlinePassed,
                    "the merchant did not ask before the exchange's deadline",
                ),
            )],
        })
        .collect()
}
