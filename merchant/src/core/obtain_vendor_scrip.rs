//! 6.2 Obtain VendorScrip from a merchant (paper 6.2, fig. 8), the merchant's side: steps
//! 2, 3, 6 and 7.
//!
//! C sends `VendorScripRequest` with a part sealed to the broker (`X1 = B0, CS_B0, W`,
//! which the merchant cannot read) and one sealed to the merchant (`X2 = W`). The merchant
//! records that it asks (`ExchangeRequested`, with the request frame, before it leaves:
//! section 7) and sends the broker `ExchangeAuthorizationRequest`: its own sealed part
//! with its `IdProof` (protocol.md 6.2 step 3) and `Signed(X3 = W, UID_C)`, then C's broker part
//! forwarded unchanged with C's header as origin (section 3). By signing `X3` the merchant
//! undertakes to issue VendorScrip of `W` to C if the broker says OK.
//!
//! C's reply is held until the broker's decision (section 6, "A node that must ask the
//! broker before it can answer"): a repeat of C's request meanwhile gets `Ack { re }`
//! (pending, not stored); the merchant repeats its own request to the broker
//! (`pending_broker_requests`) until the signed decision arrives. On `R = OK` it issues V0
//! of `W` to C (`VendorScripIssued`, the broker's signed decision as evidence) and answers
//! C with `VendorScripResponse` (`X6 = V0, CS_V0`), stored, so C's repeats get it. On
//! `R = NOK` it records the refusal (`ExchangeRefused`) and answers C with a signed
//! `Error` carrying the broker's reason, stored likewise (C learns the outcome at the
//! broker too, in `ChangeBrokerScrip`, protocol.md 6.2 step 5).
//!
//! What the merchant checks itself: `W` above zero and its books able to take it. That
//! `W` agrees in `X1` and `X3`, and everything about B0, is the broker's check (step 4).

use shared::ErrorCode;
use shared::UnixSecs;
use shared::events::{Evidence, NewEvent};
use shared::machine::Machine;
use shared::node::{Draft, OpenKind, Refusal, TxKind};
use shared::wire::bodies::{
    AckBody, ErrorBody, ExchangeAuthorizationRequestX3, ExchangeAuthorizationResponseX5, Re,
    VendorScripResponseX6,
};
use shared::wire::{Decision as Verdict, Header};

use super::broker_reply::AckError;
use super::broker_reply::BrokerReply;
use super::events::Kind;
use super::issue::issue_vendor_scrip;
use super::machine::{ExchangeState, ExchangeStep};
use super::open::ExchangeRequest;
use super::state::{Awaiting, State};
use super::{Config, Decision, Outcome, customer_bound};

/// Decides C's `VendorScripRequest` (step 3). Idempotency of a decided exchange was
/// checked by [`super::decide`] (its stored reply); a repeat while the broker has not
/// decided gets `Ack { re }`, unstored.
pub fn decide(
    state: &State,
    config: &Config,
    request: &ExchangeRequest,
    now: UnixSecs,
) -> Result<Outcome, Refusal> {
    let header = &request.header;
    let customer = customer_bound(state, config, header, TxKind::ObtainVendorScrip)?;
    let me = config.me();
    let from = state.exchange_state(&header.tx);
    if ExchangeState::transition(from.as_ref(), &ExchangeStep::Requested).is_err() {
        return match state.tables.awaiting.get(&header.tx) {
            Some(Awaiting::Exchange { digest, .. }) if *digest == request.digest => {
                let ack = AckBody {
                    re: Re::new(header, request.digest.clone()),
                    deadline: None,
                };
                Ok(Outcome::Answer(Draft::reply(
                    me,
                    header,
                    &request.digest,
                    &ack,
                )))
            }
            _ => Err(Refusal::new(
                ErrorCode::TxReused,
                "this tx already has another exchange",
            )),
        };
    }
    // Section 10: the customer's open exchanges are capped before anything is recorded.
    state
        .open
        .within(&config.quotas, OpenKind::Exchange, customer, now)?;
    let value = request.body.value;
    if value.is_zero() {
        return Err(Refusal::new(
            ErrorCode::AmountOutOfRange,
            "an exchange must have a value",
        ));
    }
    state.tables.books.issued.checked_add(value).map_err(|_| {
        Refusal::new(
            ErrorCode::AmountOutOfRange,
            "the issued total would overflow",
        )
    })?;
    let event = NewEvent::new(
        now.to_millis(),
        header.tx,
        Kind::ExchangeRequested {
            customer,
            merchant: me,
            value,
            request: shared::node::ReplyKey::of(header),
            digest: request.digest.clone(),
        },
    )
    .with_evidence(vec![Evidence::from(&request.evidence)]);
    let x3 = ExchangeAuthorizationRequestX3 { value, customer };
    let to_broker = Draft::delivery(config.mint.suite(), header.tx, me, config.broker, &x3)
        .proving(config.account_id.clone())
        .forwarding(vec![request.broker_part.clone()]);
    Ok(Outcome::Decided(Box::new(Decision {
        events: vec![event],
        reply: None,
        deliveries: vec![to_broker],
    })))
}

/// Step 6 → 7: acts on the broker's `ExchangeAuthorizationResponse` for the exchange this
/// tx awaits (see the module doc and [`super::broker_reply`]).
pub fn decided(
    state: &State,
    config: &Config,
    reply: &BrokerReply<ExchangeAuthorizationResponseX5>,
    now: UnixSecs,
) -> Result<Decision, AckError> {
    let tx = reply.header.tx;
    let step = match &reply.body.decision {
        Verdict::Ok => ExchangeStep::Issued,
        Verdict::Nok(_) => ExchangeStep::Refused,
    };
    ExchangeState::transition(state.exchange_state(&tx).as_ref(), &step)
        .map_err(|_| AckError::NotPending)?;
    let Some(Awaiting::Exchange {
        customer,
        value,
        request,
        digest,
    }) = state.tables.awaiting.get(&tx)
    else {
        return Err(AckError::NotPending);
    };
    if reply.body.customer != *customer || reply.body.value != *value {
        return Err(AckError::NotPending);
    }
    let me = config.me();
    let suite = config.mint.suite();
    let c_header = Header::new(suite, request.label, tx, request.sender);
    let re = Re::new(&c_header, digest.clone());
    let evidence = vec![Evidence::from(&reply.evidence)];
    match &reply.body.decision {
        Verdict::Ok => {
            let issued = issue_vendor_scrip(state, config, *customer, *value, tx, now, evidence)
                .map_err(AckError::Unactionable)?;
            let x6 = VendorScripResponseX6 {
                re,
                scrip: issued.scrip.clone(),
                cs_hash: issued.cs.cs_hash(suite),
            };
            let answer = Draft::reply(me, &c_header, digest, &x6)
                .sealed_with(vec![(issued.scrip.id(), issued.cs)]);
            Ok(Decision {
                events: vec![issued.event],
                reply: Some(answer),
                deliveries: Vec::new(),
            })
        }
        Verdict::Nok(reason) => {
            let event = NewEvent::new(
                now.to_millis(),
                tx,
                Kind::ExchangeRefused {
                    reason: reason.clone(),
                },
            )
            .with_evidence(evidence);
            let error = ErrorBody {
                re,
                code: reason.code,
                message: format!("the broker refused the exchange: {}", reason.message),
            };
            Ok(Decision {
                events: vec![event],
                reply: Some(Draft::reply(me, &c_header, digest, &error)),
                deliveries: Vec::new(),
            })
        }
    }
}
