//! 6.8 Renew expired scrip (paper 6.8, fig. 14), for BrokerScrip.
//!
//! `open` has verified `X0 = E0, CS_E0` and the CustomerSecret. Here: E0 passes section 4's
//! validation with expiry judged by the renewal rule (accepted up to `grace_secs` after it
//! expired, then `GraceOver`; an unexpired scrip may be renewed early, which only moves
//! its expiry). E0 is spent and E1 of the same value issued with new ids and expiry
//! (`ScripRenewed`, no money moves); the reply carries E1 sealed to C.

use shared::events::NewEvent;
use shared::node::{Draft, Refusal, TxKind};
use shared::wire::bodies::{Re, RenewRequestX0, RenewResponseX1};
use shared::{CustomerSecret, ExpiryRule};

use super::{Ctx, Decision, Kind, State, Verified, check_presented, evidence_of};

pub(super) fn decide(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &RenewRequestX0,
    cs: &CustomerSecret,
) -> Result<Decision, Refusal> {
    let customer = v.header.sender;
    state
        .bindings
        .check(&v.header.tx, TxKind::Renew, &[customer])?;
    check_presented(
        state,
        ctx,
        &x.scrip,
        cs,
        customer,
        ExpiryRule::Renewal {
            grace_secs: ctx.config.grace_secs,
        },
    )?;
    let (scrip, new_cs) = ctx.mint.issue(x.scrip.value(), ctx.expiry()?);
    let event = NewEvent::new(
        ctx.now.to_millis(),
        v.header.tx,
        Kind::ScripRenewed {
            customer,
            spent: x.scrip.id(),
            issued: scrip.body,
        },
    )
    .with_evidence(evidence_of(v));
    let body = RenewResponseX1 {
        re: Re::new(&v.header, v.digest.clone()),
        cs_hash: new_cs.cs_hash(ctx.config.suite),
        scrip: scrip.clone(),
    };
    Ok(Decision {
        events: vec![event],
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body)
            .sealed_with(vec![(scrip.id(), new_cs)]),
        deliveries: Vec::new(),
    })
}
