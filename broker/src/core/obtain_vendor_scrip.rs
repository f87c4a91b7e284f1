//! 6.2 Obtain VendorScrip from a merchant (paper 6.2, fig. 8), the broker's side: the
//! notice (step 1), the authorization (steps 4 to 6) and the deadline.
//!
//! The broker is the decision point (section 7). Its decision on M's request is final and
//! recorded either way: `ExchangeAuthorized` (B0 spent, change B1 to C, `float:broker −W,
//! bank:M +W`, memo `float:vendor:M +W`) or `ExchangeRefused` with the reason. The one
//! exception is a missing open exchange, answered `Error { NoOpenExchange }` with nothing
//! recorded, because C's notice may still be on its way. At the deadline with no decision the
//! broker closes the exchange (`ExchangeExpired`, [`expired`]); a request arriving after it
//! gets a recorded NOK.

use shared::ErrorCode;
use shared::ExpiryRule;
use shared::events::{Account, NewEvent, Posting};
use shared::ids::Pan;
use shared::node::{Draft, Refusal, TxKind};
use shared::wire::bodies::{
    ChangeBrokerScripX4, ExchangeAuthorizationResponseX5, Re, VendorScripNoticeResponseX0,
    VendorScripNoticeX0,
};
use shared::wire::{Decision as Verdict, Reason, ScripWithSecret, Undertaking};

use super::open::ExchangeAuthorization;
use super::state::ExchangeState;
use super::{Ctx, Decision, Kind, State, Verified, evidence_of, sender_peer};

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
    if state.exchanges.contains_key(&v.header.tx) {
        return Err(Refusal::new(
            ErrorCode::TxReused,
            "this tx already has an exchange",
        ));
    }
    let deadline = ctx
        .now
        .checked_add(ctx.config.exchange_window_secs)
        .ok_or_else(|| Refusal::new(ErrorCode::Internal, "deadline out of range"))?;
    let event = NewEvent::new(
        ctx.event_time(),
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
    let exchange = state.exchanges.get(&tx).ok_or_else(|| {
        Refusal::new(
            ErrorCode::NoOpenExchange,
            "no exchange was announced for this tx (yet)",
        )
    })?;
    if exchange.merchant != merchant || exchange.customer != customer {
        return Err(Refusal::new(
            ErrorCode::NotAParty,
            "the exchange of this tx is between other parties",
        ));
    }
    let merchant_pan = &sender_peer(state, v)?.pan;
    match check(state, ctx, x, exchange.deadline, exchange.state) {
        Ok(()) => Ok(authorized(ctx, v, x, merchant_pan)),
        Err(reason) => Ok(refused(ctx, v, x, reason)),
    }
}

/// Every check of step 4 whose failure is a final, recorded NOK.
fn check(
    state: &State,
    ctx: &Ctx<'_>,
    x: &ExchangeAuthorization,
    deadline: u64,
    exchange: ExchangeState,
) -> Result<(), Reason> {
    if exchange != ExchangeState::Open || ctx.now > deadline {
        return Err(Reason::new(
            ErrorCode::DeadlinePassed,
            "the exchange closed at its deadline",
        ));
    }
    if x.x1.value != x.x3.value {
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
    state
        .live
        .check_spendable(
            &x.x1.scrip,
            x.cs.expose(),
            x.x3.customer,
            ctx.now,
            ExpiryRule::Strict,
            ctx.mint,
        )
        .map_err(|e| Reason::new(e.code(), e.to_string()))?;
    if x.x1.scrip.value() < x.x3.value {
        return Err(Reason::new(
            ErrorCode::ExceedsScrip,
            "the amount exceeds the BrokerScrip",
        ));
    }
    Ok(())
}

fn authorized(
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &ExchangeAuthorization,
    merchant_pan: &Pan,
) -> Decision {
    let (merchant, customer, value) = (v.header.sender, x.x3.customer, x.x3.value);
    let b0 = &x.x1.scrip;
    // `check` established b0 ≥ value, so the difference cannot fail; zero means no change.
    let change_value = b0.value().checked_sub(value).unwrap_or_default();
    // The change is a new scrip with a fresh lifetime, like every issue.
    let expires = ctx.now.saturating_add(ctx.config.scrip_lifetime_secs);
    let change = (!change_value.is_zero()).then(|| ctx.mint.issue(change_value, expires));
    let event = NewEvent::new(
        ctx.event_time(),
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
        change: change.as_ref().map(|(scrip, cs)| ScripWithSecret {
            scrip: scrip.clone(),
            cs_hash: cs.cs_hash(ctx.config.suite),
        }),
        undertaking: Undertaking::from(&x.x3_evidence),
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

fn refused(ctx: &Ctx<'_>, v: &Verified, x: &ExchangeAuthorization, reason: Reason) -> Decision {
    let event = NewEvent::new(
        ctx.event_time(),
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
        decision: Verdict::Nok(reason),
        customer: x.x3.customer,
        value: x.x3.value,
    };
    Decision {
        events: vec![event],
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &reply).sealed_with(Vec::new()),
        deliveries: Vec::new(),
    }
}

/// `ExchangeExpired` for every open exchange whose deadline is before `now`: what the
/// broker's timer appends (section 7: the broker enforces every deadline).
#[must_use]
pub fn expired(state: &State, now: u64) -> Vec<NewEvent<Kind>> {
    state
        .exchanges
        .iter()
        .filter(|(_, e)| e.state == ExchangeState::Open && now > e.deadline)
        .map(|(tx, e)| {
            NewEvent::new(
                now.saturating_mul(1000),
                *tx,
                Kind::ExchangeExpired {
                    customer: e.customer,
                    merchant: e.merchant,
                },
            )
        })
        .collect()
}
