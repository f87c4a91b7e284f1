//! 6.3 Buy item (paper 6.3, fig. 9), the merchant's side: steps 3, 4 and 5.
//!
//! The customer pays with VendorScrip V0 of this merchant for the order `OI`. The merchant
//! checks V0 (section 4), that `OI` matches its catalogue and that `W_P = price ×
//! quantity ≤ V0.value`; then, in one event `PurchaseMade`, V0 is spent, the change
//! `V1 = V0 − W_P` is issued to the same customer (none when zero) and the order is
//! recorded. The reply `PurchaseResponse` is sealed to the customer with `CS_V1`; in the
//! same commit the merchant stores the `PurchaseCompleted` report for the broker (step 5),
//! which it sends until the broker acknowledges it (see `report`).
//!
//! Value is conserved at the merchant: V0.value = W_P + V1.value (asserted in `apply`).

use shared::UnixSecs;
use shared::events::{Evidence, NewEvent};
use shared::node::{Draft, Refusal, TxKind};
use shared::wire::bodies::{PurchaseRequestX1, PurchaseResponseX2, Re, Receipt, ScripWithSecret};
use shared::{ErrorCode, ExpiryRule};

use super::catalogue::OrderError;
use super::events::Kind;
use super::open::Presented;
use super::report::report_draft;
use super::state::{State, Unreported};
use super::{Config, Decision, check_presented, customer_bound};

/// Decides a verified `PurchaseRequest` (6.3 step 3). Idempotency was checked by
/// [`super::decide`].
pub fn decide(
    state: &State,
    config: &Config,
    request: &Presented<PurchaseRequestX1>,
    now: UnixSecs,
) -> Result<Decision, Refusal> {
    let header = &request.header;
    let customer = customer_bound(state, config, header, TxKind::BuyItem)?;
    let me = config.me();
    let body = &request.body;
    let record = check_presented(
        state,
        config,
        &body.scrip,
        &request.cs,
        customer,
        now,
        ExpiryRule::Strict,
    )?;
    let paid = config.catalogue.price(&body.order).map_err(order_refusal)?;
    let change_value = record.body.value.checked_sub(paid).map_err(|_| {
        Refusal::new(
            ErrorCode::ExceedsScrip,
            format!(
                "the order costs {paid}, the scrip holds {}",
                record.body.value
            ),
        )
    })?;
    state.tables.books.paid.checked_add(paid).map_err(|_| {
        Refusal::new(
            ErrorCode::AmountOutOfRange,
            "the sales total would overflow",
        )
    })?;

    let change =
        (!change_value.is_zero()).then(|| config.mint.issue(change_value, config.expiry_from(now)));
    let receipt = Receipt {
        order_id: body.order.order_id,
        paid,
        issued_at: now.get(),
    };
    let event = NewEvent::new(
        now.to_millis(),
        header.tx,
        Kind::PurchaseMade {
            customer,
            spent: record.body,
            change: change.as_ref().map(|(scrip, _)| scrip.body),
            order: body.order.clone(),
            receipt: receipt.clone(),
        },
    )
    .with_evidence(vec![Evidence::from(&request.evidence)]);

    let response = PurchaseResponseX2 {
        re: Re::new(header, request.digest.clone()),
        change: change.as_ref().map(|(scrip, cs)| ScripWithSecret {
            scrip: scrip.clone(),
            cs_hash: cs.cs_hash(header.suite),
        }),
        order: body.order.clone(),
        receipt,
    };
    let secrets = change
        .into_iter()
        .map(|(scrip, cs)| (scrip.id(), cs))
        .collect();
    let reply = Draft::reply(me, header, &request.digest, &response).sealed_with(secrets);
    let report = report_draft(
        config,
        header.tx,
        &Unreported {
            customer,
            value: paid,
        },
    );
    Ok(Decision {
        events: vec![event],
        reply: Some(reply),
        deliveries: vec![report],
    })
}

/// The refusal of an order that does not match the catalogue (6.3 step 3).
fn order_refusal(e: OrderError) -> Refusal {
    let code = match e {
        OrderError::TotalOverflow(_) => ErrorCode::AmountOutOfRange,
        OrderError::UnknownItem(_)
        | OrderError::NameMismatch(_)
        | OrderError::PriceMismatch { .. }
        | OrderError::ZeroQuantity(_) => ErrorCode::CatalogueMismatch,
    };
    Refusal::new(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::issue::issue_vendor_scrip;
    use crate::core::open::{VerifiedRequest, open};
    use crate::core::testkit::{Kit, NOW, fold, tea};
    use crate::core::{Outcome, decide as decide_request};
    use shared::wire::Label;
    use shared::{Amount, Suite, TxId};

    /// The pure core, without a log: one event, the reply sealed to the customer with the
    /// change's secret, the report to the broker in the clear; a held scrip is refused.
    #[test]
    fn decides_one_event_a_sealed_reply_and_a_clear_report() {
        let kit = Kit::new(Suite::Modern);
        let config = kit.config();
        let mut state = kit.state();
        let issued = issue_vendor_scrip(
            &state,
            &config,
            kit.customer.uid(),
            Amount::from_minor(1_000),
            TxId::random(),
            NOW,
            Vec::new(),
        )
        .unwrap();
        fold(&mut state, issued.event);
        let tx = TxId::random();
        let frame = kit.purchase(kit.customer, tx, &issued.scrip, &issued.cs, &tea(1));
        let request = open(&frame, kit.merchant, &state, kit.broker.uid()).unwrap();
        let Outcome::Decided(decision) = decide_request(&state, &config, &request, NOW).unwrap()
        else {
            panic!("a new request is decided")
        };
        assert_eq!(decision.events.len(), 1);
        let event = &decision.events[0];
        assert_eq!(event.tx, tx);
        assert!(
            event.postings.is_empty(),
            "the merchant keeps no bank accounts"
        );
        assert_eq!(event.evidence.len(), 1);
        assert_eq!(event.evidence[0].signer, kit.customer.uid());
        let Kind::PurchaseMade { change, spent, .. } = &event.kind else {
            panic!("not a purchase")
        };
        assert_eq!(spent.scrip_id, issued.scrip.id());
        let change = change.expect("change");
        assert_eq!(change.value, Amount::from_minor(550));
        assert_eq!(
            decision.reply.as_ref().expect("a reply").to,
            kit.customer.uid()
        );
        assert_eq!(
            decision.reply.as_ref().expect("a reply").header.label,
            Label::PurchaseResponse
        );
        assert!(decision.reply.as_ref().expect("a reply").sealed);
        assert_eq!(decision.reply.as_ref().expect("a reply").secrets.len(), 1);
        assert_eq!(
            decision.reply.as_ref().expect("a reply").secrets[0].0,
            change.scrip_id
        );
        assert_eq!(decision.deliveries.len(), 1);
        let report = &decision.deliveries[0];
        assert_eq!(report.to, kit.broker.uid());
        assert_eq!(report.header.label, Label::PurchaseCompleted);
        assert!(!report.sealed, "6.3 step 5 is signed in the clear");

        // Held by an escrow (6.5, 6.7): refused by a purchase and by a renewal (§4).
        assert!(state.tables.live.hold(
            &issued.scrip.id(),
            TxId::random(),
            NOW.saturating_add_secs(60).get()
        ));
        let refused = decide_request(&state, &config, &request, NOW).unwrap_err();
        assert_eq!(refused.code, ErrorCode::Held);
        let renew = kit.renew(kit.customer, TxId::random(), &issued.scrip, &issued.cs);
        let renew = open(&renew, kit.merchant, &state, kit.broker.uid()).unwrap();
        assert!(matches!(renew, VerifiedRequest::Renew(_)));
        let refused = decide_request(&state, &config, &renew, NOW).unwrap_err();
        assert_eq!(refused.code, ErrorCode::Held);
    }
}
