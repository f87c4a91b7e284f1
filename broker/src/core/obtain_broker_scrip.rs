//! 6.1 Obtain BrokerScrip (paper 6.1, fig. 7).
//!
//! `open` has verified the IdProof and `X0 = W, N`. Here: C holds no live BrokerScrip
//! (section 4: at most one; else `BrokerScripLive`, top it up with 6.4, or `Held` while an
//! escrow of 6.5 holds it), `W > 0`, and
//! `bank:<PAN_C> ≥ W` (`InsufficientFunds`). Then B0 of W is issued: event
//! `BrokerScripIssued`, `bank:C −W, float:broker +W`, and the reply carries B0 with its
//! CustomerSecret sealed to C.

use shared::ErrorCode;
use shared::events::{Account, NewEvent, Posting};
use shared::node::{Draft, Refusal, ScripState, TxKind};
use shared::wire::bodies::{BrokerScripRequestX0, BrokerScripResponseX1, Re};

use super::{Ctx, Decision, Kind, State, Verified, evidence_of, sender_peer};

pub(super) fn decide(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &BrokerScripRequestX0,
) -> Result<Decision, Refusal> {
    let customer = v.header.sender;
    state
        .bindings
        .check(&v.header.tx, TxKind::ObtainBrokerScrip, &[customer])?;
    let peer = sender_peer(state, v)?;
    if x.value.is_zero() {
        return Err(Refusal::new(
            ErrorCode::AmountOutOfRange,
            "a BrokerScrip must have a value",
        ));
    }
    if let Some(id) = state.live.owned_by(&customer).next() {
        // Section 4: a held BrokerScrip is refused with `Held` by every other request;
        // C may neither top it up nor replace it until its escrow (6.5) ends.
        if state
            .live
            .get(id)
            .is_some_and(|r| r.state != ScripState::Live)
        {
            return Err(Refusal::new(
                ErrorCode::Held,
                "your BrokerScrip is held by an escrow until its transaction ends",
            ));
        }
        return Err(Refusal::new(
            ErrorCode::BrokerScripLive,
            "you hold a live BrokerScrip: top it up instead",
        ));
    }
    if state.bank_balance(&peer.pan) < x.value {
        return Err(Refusal::new(
            ErrorCode::InsufficientFunds,
            "the bank balance is below the value asked",
        ));
    }
    let (scrip, cs) = ctx.mint.issue(x.value, ctx.expiry()?);
    let event = NewEvent::new(
        ctx.now.to_millis(),
        v.header.tx,
        Kind::BrokerScripIssued {
            customer,
            scrip: scrip.body,
        },
    )
    .with_postings(vec![
        Posting::decrease(Account::Bank(peer.pan.clone()), x.value),
        Posting::increase(Account::FloatBroker, x.value),
    ])
    .with_evidence(evidence_of(v));
    let body = BrokerScripResponseX1 {
        re: Re::new(&v.header, v.digest.clone()),
        cs_hash: cs.cs_hash(ctx.config.suite),
        scrip: scrip.clone(),
        nonce: x.nonce,
    };
    Ok(Decision {
        events: vec![event],
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body)
            .sealed_with(vec![(scrip.id(), cs)]),
        deliveries: Vec::new(),
    })
}
