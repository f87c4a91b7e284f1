//! 6.4 Top up BrokerScrip (paper 6.4, fig. 10).
//!
//! `open` has verified the IdProof, `X0 = B0, CS_B0, W_new, N` and that the sealed
//! CustomerSecret hashes to the body's `cs_hash`. Here: B0 passes section 4's validation
//! (certificate, CS, live and not held, body, owner, not expired), `W_new > B0.value`
//! (`TopUpNotLarger`), and `bank:C ≥ W_new − B0.value`. Then B0 is spent and B1 of `W_new`
//! issued in one event `BrokerScripToppedUp`: `bank:C −d, float:broker +d`.

use shared::ErrorCode;
use shared::events::{Account, NewEvent, Posting};
use shared::node::{Draft, Refusal, TxKind};
use shared::wire::bodies::{BrokerScripResponseX1, BrokerScripTopUpX0, Re};
use shared::{CustomerSecret, ExpiryRule};

use super::{Ctx, Decision, Kind, State, Verified, check_presented, evidence_of, sender_peer};

pub(super) fn decide(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &BrokerScripTopUpX0,
    cs: &CustomerSecret,
) -> Result<Decision, Refusal> {
    let customer = v.header.sender;
    state
        .bindings
        .check(&v.header.tx, TxKind::TopUpBrokerScrip, &[customer])?;
    let peer = sender_peer(state, v)?;
    check_presented(state, ctx, &x.scrip, cs, customer, ExpiryRule::Strict)?;
    let old = x.scrip.value();
    if x.new_value <= old {
        return Err(Refusal::new(
            ErrorCode::TopUpNotLarger,
            "a top-up must be to a larger value",
        ));
    }
    let difference = x
        .new_value
        .checked_sub(old)
        .map_err(|e| Refusal::new(ErrorCode::AmountOutOfRange, e.to_string()))?;
    if state.bank_balance(&peer.pan) < difference {
        return Err(Refusal::new(
            ErrorCode::InsufficientFunds,
            "the bank balance is below the top-up",
        ));
    }
    let (scrip, new_cs) = ctx.mint.issue(x.new_value, ctx.expiry()?);
    let event = NewEvent::new(
        ctx.now.to_millis(),
        v.header.tx,
        Kind::BrokerScripToppedUp {
            customer,
            spent: x.scrip.id(),
            issued: scrip.body,
        },
    )
    .with_postings(vec![
        Posting::decrease(Account::Bank(peer.pan.clone()), difference),
        Posting::increase(Account::FloatBroker, difference),
    ])
    .with_evidence(evidence_of(v));
    let body = BrokerScripResponseX1 {
        re: Re::new(&v.header, v.digest.clone()),
        cs_hash: new_cs.cs_hash(ctx.config.suite),
        scrip: scrip.clone(),
        nonce: x.nonce,
    };
    Ok(Decision {
        events: vec![event],
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body)
            .sealed_with(vec![(scrip.id(), new_cs)]),
        deliveries: Vec::new(),
    })
}
