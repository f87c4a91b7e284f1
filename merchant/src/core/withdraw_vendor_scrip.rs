//! 6.7 Withdraw VendorScrip (paper 6.7, fig. 13), the merchant's side: steps 1, 2 and 4.
//!
//! C presents V0 (`X0 = V0, CS_V0`, sealed to the merchant) with a part sealed to the
//! broker (`X1 = W, UID_M` with C's IdProof) that the merchant relays unread. The merchant
//! checks V0 as section 4 says (live, not held, owner, unexpired), holds it for this tx
//! (`VendorEscrowOpened`, deadline = now + the configured escrow window) and, in the same
//! commit, stores its reply `Ack { re, deadline }` to C and its request to the broker,
//! `VendorWithdrawAuthorization`: its `IdProof` and `Signed(X2 = W, UID_C, deadline)`, then
//! C's broker part forwarded unchanged. `W` in `X2` is V0's value: the merchant cannot read
//! `X1`, so "W = V0.value" is checked by the broker comparing `X1` with `X2` (a customer
//! who asks for another amount gets the broker's `NOK(AmountMismatch)` and V0 back).
//!
//! On the broker's `VendorWithdrawResponse`: OK → V0 is spent (`VendorScripWithdrawn`),
//! NOK → released (`VendorEscrowReleased`). With no decision the merchant repeats step 2,
//! even after the deadline (the broker answers a repeat from its stored decision); it never
//! releases V0 on its own timer, so a lost OK cannot pay the customer twice (section 7).

use shared::UnixSecs;
use shared::events::{Evidence, NewEvent};
use shared::machine::Machine;
use shared::node::{Draft, Refusal, TxKind};
use shared::wire::Decision as Verdict;
use shared::wire::bodies::{AckBody, Re, VendorWithdrawAuthorizationX2, VendorWithdrawResponseX3};
use shared::{ErrorCode, ExpiryRule};

use super::broker_reply::AckError;
use super::broker_reply::BrokerReply;
use super::events::{Escrow, Kind};
use super::machine::{WithdrawState, WithdrawStep};
use super::open::WithdrawRequest;
use super::state::{Awaiting, State};
use super::{Config, Decision, check_presented, customer_bound};

/// Decides C's `VendorWithdrawRequest` (steps 1–2). Idempotency was checked by
/// [`super::decide`]: a repeat gets the stored `Ack`.
pub fn decide(
    state: &State,
    config: &Config,
    request: &WithdrawRequest,
    now: UnixSecs,
) -> Result<Decision, Refusal> {
    let presented = &request.presented;
    let header = &presented.header;
    let customer = customer_bound(state, config, header, TxKind::WithdrawVendorScrip)?;
    let me = config.me();
    let record = check_presented(
        state,
        config,
        &presented.body.scrip,
        &presented.cs,
        customer,
        now,
        ExpiryRule::Strict,
    )?;
    let held = record.body.scrip_id;
    // A repeat of C's request got its stored `Ack` before this (section 7).
    WithdrawState::transition(
        state.withdraw_state(&header.tx).as_ref(),
        &WithdrawStep::Held { held },
    )
    .map_err(|_| Refusal::new(ErrorCode::TxReused, "this tx already has a withdrawal"))?;
    let value = record.body.value;
    let deadline = now.saturating_add_secs(config.escrow_window_secs).get();
    let event = NewEvent::new(
        now.to_millis(),
        header.tx,
        Kind::VendorEscrowOpened {
            customer,
            scrip_id: held,
            until: deadline,
            escrow: Escrow::Withdraw { value },
        },
    )
    .with_evidence(vec![Evidence::from(&presented.evidence)]);
    let ack = AckBody {
        re: Re::new(header, presented.digest.clone()),
        deadline: Some(deadline),
    };
    let x2 = VendorWithdrawAuthorizationX2 {
        value,
        customer,
        deadline,
    };
    let to_broker = Draft::delivery(config.mint.suite(), header.tx, me, config.broker, &x2)
        .proving(config.account_id.clone())
        .forwarding(vec![request.broker_part.clone()]);
    Ok(Decision {
        events: vec![event],
        reply: Some(Draft::reply(me, header, &presented.digest, &ack)),
        deliveries: vec![to_broker],
    })
}

/// Step 4: acts on the broker's `VendorWithdrawResponse` for the withdrawal this tx awaits.
pub fn decided(
    state: &State,
    reply: &BrokerReply<VendorWithdrawResponseX3>,
    now: UnixSecs,
) -> Result<Decision, AckError> {
    let tx = reply.header.tx;
    let Some(Awaiting::Withdraw {
        customer,
        held,
        value,
    }) = state.tables.awaiting.get(&tx)
    else {
        return Err(AckError::NotPending);
    };
    if reply.body.customer != *customer || reply.body.value != *value {
        return Err(AckError::NotPending);
    }
    let step = match &reply.body.decision {
        Verdict::Ok => WithdrawStep::Withdrawn { spent: *held },
        Verdict::Nok(_) => WithdrawStep::Released { scrip: *held },
    };
    WithdrawState::transition(state.withdraw_state(&tx).as_ref(), &step)
        .map_err(|_| AckError::NotPending)?;
    let record = state
        .tables
        .live
        .held_by(held, tx)
        .map_err(|_| AckError::NotPending)?;
    let kind = match &reply.body.decision {
        Verdict::Ok => Kind::VendorScripWithdrawn {
            customer: *customer,
            spent: record.body,
        },
        Verdict::Nok(reason) => Kind::VendorEscrowReleased {
            scrip_id: *held,
            reason: reason.clone(),
        },
    };
    let event = NewEvent::new(now.to_millis(), tx, kind)
        .with_evidence(vec![Evidence::from(&reply.evidence)]);
    Ok(Decision {
        events: vec![event],
        reply: None,
        deliveries: Vec::new(),
    })
}
