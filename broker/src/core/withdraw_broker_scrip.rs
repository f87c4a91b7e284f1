//! 6.6 Withdraw BrokerScrip (paper 6.6, fig. 12).
//!
//! `open` has verified the IdProof, `X0 = B0, CS_B0` and the CustomerSecret. Here: B0
//! passes section 4's validation. Then B0 is spent and its value credited: event
//! `BrokerScripWithdrawn`, `float:broker −v, bank:C +v`; the reply `X1 = I, value` is
//! signed in the clear (it holds no secret).

use shared::events::{Account, NewEvent, Posting};
use shared::node::{Draft, Refusal, TxKind};
use shared::wire::bodies::{BrokerScripWithdrawResponseX1, BrokerScripWithdrawX0, Re};
use shared::{CustomerSecret, ExpiryRule};

use super::{Ctx, Decision, Kind, State, Verified, check_presented, evidence_of, sender_peer};

pub(super) fn decide(
    state: &State,
    ctx: &Ctx<'_>,
    v: &Verified,
    x: &BrokerScripWithdrawX0,
    cs: &CustomerSecret,
) -> Result<Decision, Refusal> {
    let customer = v.header.sender;
    state
        .bindings
        .check(&v.header.tx, TxKind::WithdrawBrokerScrip, &[customer])?;
    let peer = sender_peer(state, v)?;
    check_presented(state, ctx, &x.scrip, cs, customer, ExpiryRule::Strict)?;
    let value = x.scrip.value();
    let event = NewEvent::new(
        ctx.now.to_millis(),
        v.header.tx,
        Kind::BrokerScripWithdrawn {
            customer,
            spent: x.scrip.id(),
            value,
        },
    )
    .with_postings(vec![
        Posting::decrease(Account::FloatBroker, value),
        Posting::increase(Account::Bank(peer.pan.clone()), value),
    ])
    .with_evidence(evidence_of(v));
    let body = BrokerScripWithdrawResponseX1 {
        re: Re::new(&v.header, v.digest.clone()),
        info: "withdrawn to your bank account".to_owned(),
        value,
    };
    Ok(Decision {
        events: vec![event],
        reply: Draft::reply(ctx.me, &v.header, &v.digest, &body),
        deliveries: Vec::new(),
    })
}
